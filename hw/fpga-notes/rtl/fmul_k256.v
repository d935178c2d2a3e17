// Pipelined multiplier modulo p = 2^256 - 2^32 - 977 (secp256k1). Inputs: any 256-bit values.
// Output: fully reduced, in [0, p). Latency 11 (7 product + 4 reduction), II = 1.
// With c = 2^32 + 977 (2^256 = c mod p):
//   R1: t1 = L + H*c,  P = H*2^256 + L                     (t1 < 2^289)
//   R2: t2 = t1[255:0] + t1[288:256]*c                     (t2 < 2^256 + 2^66)
//   R3: t3 = t2[255:0] + t2[256]*c                         (t3 < p: if t2[256] then t2[255:0] < 2^66)
//   R4: out = t3 >= p ? t3 - p : t3, tested as (t3 + c) >= 2^256
// x*977 = x*(1024 - 32 - 16 + 1) in LUT adders; no DSPs in the reduction.
module fmul_k256 (
    input  wire         clk,
    input  wire         in_valid,
    input  wire [255:0] a,
    input  wire [255:0] b,
    output wire         out_valid,
    output wire [255:0] r
);
    localparam LAT = 11;
    localparam [31:0] C977 = 32'd977;
    wire [511:0] prod;
    mul256 u_mul (.clk(clk), .a(a), .b(b), .p(prod));

    reg [LAT-1:0] vpipe;
    always @(posedge clk) vpipe <= {vpipe[LAT-2:0], in_valid};
    initial vpipe = {LAT{1'b0}};
    assign out_valid = vpipe[LAT-1];

    wire [299:0] h1  = {44'b0, prod[511:256]};
    wire [299:0] h1c = (h1 << 32) + (h1 << 10) - (h1 << 5) - (h1 << 4) + h1;
    reg  [288:0] t1;
    wire [32:0]  h2  = t1[288:256];
    wire [99:0]  h2w = {67'b0, h2};
    wire [99:0]  h2c = (h2w << 32) + (h2w << 10) - (h2w << 5) - (h2w << 4) + h2w;
    reg  [256:0] t2;
    reg  [255:0] t3;
    wire [256:0] s3  = {1'b0, t3} + {224'b0, 1'b1, C977};
    reg  [255:0] t4;
    always @(posedge clk) begin
        t1 <= {33'b0, prod[255:0]} + h1c[288:0];
        t2 <= {1'b0, t1[255:0]} + {157'b0, h2c};
        t3 <= t2[255:0] + (t2[256] ? {223'b0, 1'b1, C977} : 256'd0);
        t4 <= s3[256] ? s3[255:0] : t3;
    end
    assign r = t4;
endmodule
