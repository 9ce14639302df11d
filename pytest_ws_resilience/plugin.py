"""pytest glue (stub; replaced by the configuration work)."""
