"""GraphQL of notifications: channels, rules and the delivery log; mutations to manage them, replay and test."""
