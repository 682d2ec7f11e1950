"""ISO 3166-1 alpha-2 country codes, so a configuration or a checkout naming `XX` or `de` is
refused where it is written rather than matching nothing later."""

from __future__ import annotations

from typing import Final

from paywire.errors import InvalidRequest

__all__ = ["COUNTRY_CODES", "check_country"]

# The officially assigned codes, and XK (Kosovo), which card networks and providers accept.
COUNTRY_CODES: Final = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW
BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI
FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN
IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME
MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF
PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK
YE YT ZA ZM ZW
""".split())


def check_country(code: object) -> str:
    """`code` if it is an assigned ISO 3166-1 alpha-2 code in upper case; else `InvalidRequest`."""
    if isinstance(code, str) and code in COUNTRY_CODES:
        return code
    hint = f"; did you mean {code.upper()!r}?" if isinstance(code, str) and code.upper() in COUNTRY_CODES else ""
    raise InvalidRequest(
        f"country {code!r} is not an ISO 3166-1 alpha-2 code such as 'DE'{hint}", param="country",
    )
