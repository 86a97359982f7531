"""Tables and figures of the paper's results."""
