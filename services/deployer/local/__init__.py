"""Local deploy driver: runs releases as real OS processes behind a weighted reverse proxy."""
