//! .BTF.ext reader.
