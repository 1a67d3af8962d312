// Replaced by the expression language (see NOTES.md, issue 4).
