"""The `ernte` command line (`main`), its search output (`search`) and `ernte demo` (`demo`)."""
