"""Study mode: one privacy audit per point of a grid (grid.py), and one table and figures over them (summary.py)."""
