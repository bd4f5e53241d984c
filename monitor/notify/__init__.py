"""Who is told what: results in, composed messages out."""
