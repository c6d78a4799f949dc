"""leadscore's front door: the root of the `leadscore` console script."""
