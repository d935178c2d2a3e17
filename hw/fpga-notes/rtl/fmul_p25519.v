// Pipelined multiplier modulo p = 2^255 - 19. Inputs: any 256-bit values (< 2^256).
// Output: fully reduced, in [0, p). Latency 10 (7 product + 3 reduction), II = 1.
//   R1: t1 = L + 19*H, P = H*2^255 + L             (H < 2^257, t1 < 2^263)
//   R2: t2 = t1[254:0] + 19*t1[262:255]            (t2 < 2^255 + 19*256 < 2p)
//   R3: out = t2 >= p ? t2 - p : t2, tested as (t2 + 19) >= 2^255
// 19*x = (x<<4) + (x<<1) + x in LUT adders (2^255 = 19 mod p).
module fmul_p25519 (
    input  wire         clk,
    input  wire         in_valid,
    input  wire [255:0] a,
    input  wire [255:0] b,
    output wire         out_valid,
    output wire [255:0] r
);
    localparam LAT = 10;
    wire [511:0] prod;
    mul256 u_mul (.clk(clk), .a(a), .b(b), .p(prod));

    reg [LAT-1:0] vpipe;
    always @(posedge clk) vpipe <= {vpipe[LAT-2:0], in_valid};
    initial vpipe = {LAT{1'b0}};
    assign out_valid = vpipe[LAT-1];

    wire [256:0] h1 = prod[511:255];
    reg  [262:0] t1;
    reg  [255:0] t2;
    reg  [254:0] t3;
    wire [7:0]   h2 = t1[262:255];
    wire [255:0] s2 = t2 + 256'd19;
    always @(posedge clk) begin
        t1 <= {8'b0, prod[254:0]} + ({6'b0, h1} << 4) + ({6'b0, h1} << 1) + {6'b0, h1};
        t2 <= {1'b0, t1[254:0]} + ({243'b0, h2, 4'b0} + {247'b0, h2, 1'b0} + {248'b0, h2});
        t3 <= s2[255] ? s2[254:0] : t2[254:0];
    end
    assign r = {1'b0, t3};
endmodule
