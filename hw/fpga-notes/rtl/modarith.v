// Small building blocks for the point adders (Verilog-2005, written for hw/fpga-notes).

// r = (a + b) mod P, inputs in [0, P); registered output, latency 1.
module modadd #(parameter [255:0] P = 256'd0) (
    input  wire         clk,
    input  wire [255:0] a,
    input  wire [255:0] b,
    output reg  [255:0] r
);
    wire [256:0] s = {1'b0, a} + {1'b0, b};
    wire [257:0] d = {1'b0, s} - {2'b0, P};
    always @(posedge clk) r <= d[257] ? s[255:0] : d[255:0];
endmodule

// r = (a - b) mod P, inputs in [0, P); registered output, latency 1.
module modsub #(parameter [255:0] P = 256'd0) (
    input  wire         clk,
    input  wire [255:0] a,
    input  wire [255:0] b,
    output reg  [255:0] r
);
    wire [256:0] d = {1'b0, a} - {1'b0, b};
    always @(posedge clk) r <= d[256] ? d[255:0] + P : d[255:0];
endmodule

// N-cycle delay line of W bits (SRL/FF chain); N >= 1.
module delay #(parameter W = 256, parameter N = 1) (
    input  wire         clk,
    input  wire [W-1:0] d,
    output wire [W-1:0] q
);
    reg [W*N-1:0] sr;
    generate
        if (N == 1) begin : g1
            always @(posedge clk) sr <= d;
        end else begin : gn
            always @(posedge clk) sr <= {sr[W*(N-1)-1:0], d};
        end
    endgenerate
    assign q = sr[W*N-1 -: W];
endmodule

// r = 21*x mod p256k1 (b3 = 3b for secp256k1's b = 7), x in [0, p); LUT adders only, latency 3.
module k256_mul21 (
    input  wire         clk,
    input  wire [255:0] x,
    output reg  [255:0] r
);
    localparam [256:0] C = 257'h1000003d1;          // 2^256 mod p = 2^32 + 977
    reg  [260:0] t;                                 // 21x < 2^261
    reg  [256:0] u;                                 // < 2^256 + 2^38
    wire [256:0] s = u + C;
    wire [256:0] h = {252'b0, t[260:256]};
    wire [256:0] hc = (h << 32) + (h << 10) - (h << 5) - (h << 4) + h;   // h * (2^32 + 977)
    always @(posedge clk) begin
        t <= ({5'b0, x} << 4) + ({5'b0, x} << 2) + {5'b0, x};
        u <= {1'b0, t[255:0]} + hc;
        r <= u[256] ? u[255:0] + C[255:0] : (s[256] ? s[255:0] : u[255:0]);
    end
endmodule
