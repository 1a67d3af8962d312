/* Header-only: see include/CWritSystem.h. */
