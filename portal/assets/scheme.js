// Placeholder: the scheme's browser code comes from the branch that writes the browser side of the scheme.
