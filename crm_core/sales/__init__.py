"""Products, opportunities, agreements and orders."""
