"""What both SQL backends share, written once over a small `Dialect`: the rows and their
SQL, a shift's transition (`transitions`), and the store's aggregates — roster, shifts and
their facts, outbox, inbound and opt-outs, views — as mixins that `SqliteStore` and
`PostgresStore` compose with their own writer (`SqlBackend`)."""
