"""GraphQL for campaigns: ``campaign`` / ``campaigns`` with progress, ETA and a targets connection, a mutation
for every action, and ``Inverter.campaignHistory``."""
