"""PayPal for paywire: Orders v2, Payments v2 and Vault v3 through the paywire command pipeline."""
