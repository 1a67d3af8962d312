// Replaced by the hook runner (see NOTES.md, issue 4).
