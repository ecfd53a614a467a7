//! C ABI for mailconnect (issue 4).
