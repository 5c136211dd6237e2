//! As a library component (the cdylib), this exports nothing the server
//! serves: it must be refused with what it exports.
