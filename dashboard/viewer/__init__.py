"""The event viewer: staff pages that browse Kafka (topics, messages, consumer groups, schemas) through
eventbus.browse."""
