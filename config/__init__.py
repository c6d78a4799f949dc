"""The default definitions, shipped as package data; `leadscore init DIR` copies them."""
