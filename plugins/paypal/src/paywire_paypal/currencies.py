"""The currencies PayPal's REST APIs accept, as plain data: the gateway definition reads it at discovery.

https://developer.paypal.com/api/rest/reference/currency-codes/ - HUF, JPY and TWD take whole
units only ("this currency does not support decimals"); every other one takes two decimals.
"""

CURRENCIES = frozenset(
    "AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF ILS JPY MXN MYR NOK NZD PHP PLN RUB SEK SGD THB TWD USD".split()
)
NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})
