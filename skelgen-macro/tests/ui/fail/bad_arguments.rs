skelgen_macro::include_bpf!();
skelgen_macro::include_bpf!(vfsstat);
skelgen_macro::include_bpf!("x.bpf.o", nmae = "x_bpf");
skelgen_macro::include_bpf!("x.bpf.o", name = x_bpf);
skelgen_macro::include_bpf!("x.bpf.o", name = "a", name = "b");
skelgen_macro::include_bpf!("x.bpf.o" "y.bpf.o");

fn main() {}
