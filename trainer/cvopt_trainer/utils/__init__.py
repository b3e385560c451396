"""Small shared helpers: box geometry (boxes.py) and seeding (seed.py)."""
