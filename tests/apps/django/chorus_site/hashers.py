"""Django's PBKDF2-SHA256 at 20,000 iterations instead of 1,000,000: the same algorithm and
login path, at a cost that lets twenty virtual users log in at once on a two-core test machine
within a second instead of twenty (the load tests judge what the application stores, not
how fast it hashes)."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class TestPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 20_000
