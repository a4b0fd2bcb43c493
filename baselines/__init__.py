"""SIE and the other methods, their trainer and evaluation (to come)."""
