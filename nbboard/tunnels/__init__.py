"""Public tunnels in front of a board, always through nbboard's authenticating gate."""
