"""The isolation-violation detector and its substring index."""
