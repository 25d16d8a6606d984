"""GraphQL over the mirror: accounts, sites, dongles, inverters, batteries, meters, history, sync runs."""
