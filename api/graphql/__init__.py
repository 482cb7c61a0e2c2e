"""The GraphQL API (PRODUCT.md section 4): names are fixed; add, don't rename."""
