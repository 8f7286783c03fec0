"""Who makes a request and what they may do: principals, scopes, and the checks that find them."""
