skelgen_macro::include_bpf!("tests/ui/fail/does_not_exist.bpf.o");

fn main() {}
