"""Models of this package, registered in the zoo (work in progress)."""
