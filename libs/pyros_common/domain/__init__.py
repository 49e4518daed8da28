"""Pure domain logic: no Kafka, SQL or HTTP imports."""
