"""Framework-free building blocks shared by every domain: tenancy, errors, clock."""
