# Nothing here but a comment
/* and another */
