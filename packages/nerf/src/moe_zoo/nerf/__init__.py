"""Switch-NeRF++: heterogeneous mixture of hash experts with a hash gate, for large-scale neural radiance fields. (work in progress)."""
