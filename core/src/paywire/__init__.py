"""paywire: a payment-gateway framework."""
