"""FakePay as an installed plugin, for `paywire serve` processes: the test writes a dist-info
naming `tests.serve.fakepay_plugin:plugin` in the `paywire` entry-point group."""

from tests.ledger.fakepay import FakePayPlugin

plugin = FakePayPlugin()
