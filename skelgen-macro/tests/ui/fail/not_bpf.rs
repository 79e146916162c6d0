skelgen_macro::include_bpf!("tests/ui/fail/not_bpf.txt", name = "not_bpf");

fn main() {}
