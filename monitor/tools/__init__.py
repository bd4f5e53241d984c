"""Tools for admins and newcomers: rule preview, explain, rule tests, the sample."""
