//! `include_bpf!`: a typed skeleton from a BPF object at compile time.
