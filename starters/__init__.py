"""The `opsready` command line: a thin shell over the client API (`opsready.OpsreadyClient`)."""
