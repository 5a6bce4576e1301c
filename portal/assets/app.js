// Placeholder: the page's script comes from the branch that writes the browser side of the scheme.
