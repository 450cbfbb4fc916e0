"""Harnesses for testing shiftd, public the way `trio.testing` is: an engine with a fake
provider (`engine`), the REST API and the coordinator's page in-process (`api`, `board`), a
control-socket client (`control`), a scripted daemon for shiftctl (`shiftctl`), the real
daemon as a subprocess (`daemon`), and the crash loop with its invariants."""
