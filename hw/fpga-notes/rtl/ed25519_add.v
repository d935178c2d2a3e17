// edwards25519 point addition, extended twisted Edwards coordinates (X:Y:Z:T), a = -1:
// the unified formulas of Hisil, Wong, Carter, Dawson, "Twisted Edwards Curves Revisited"
// (ASIACRYPT 2008), with k = 2d ("add-2008-hwcd-3"); complete on edwards25519 (d non-square):
//   A = (Y1-X1)(Y2-X2)  B = (Y1+X1)(Y2+X2)  C = T1*k*T2  D = 2*Z1*Z2
//   E = B-A  F = D-C  G = D+C  H = B+A
//   X3 = E*F  Y3 = G*H  T3 = E*H  Z3 = F*G
// Inputs and outputs fully reduced (in [0, p)). Fully pipelined: II = 1, 9 fmul_p25519
// (4 + 1 + 4), latency 1 + 3*10 + 1 = 32 cycles.
module ed25519_add (
    input  wire         clk,
    input  wire         in_valid,
    input  wire [255:0] x1, y1, z1, t1, x2, y2, z2, t2,
    output wire         out_valid,
    output wire [255:0] x3, y3, z3, t3
);
    localparam [255:0] P = 256'h7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed;
    localparam [255:0] K = 256'h2406d9dc56dffce7198e80f2eef3d13000e0149a8283b156ebd69b9426b2f159;
    localparam M = 10;                       // fmul_p25519 latency
    localparam LAT = 1 + 3*M + 1;

    reg [LAT-1:0] vpipe;
    initial vpipe = {LAT{1'b0}};
    always @(posedge clk) vpipe <= {vpipe[LAT-2:0], in_valid};
    assign out_valid = vpipe[LAT-1];

    // stage 0 (1 cycle): sums/differences, 2*Z1
    wire [255:0] ym1, yp1, ym2, yp2, z1x2, t1d, t2d, z2d;
    modsub #(.P(P)) s0 (.clk(clk), .a(y1), .b(x1), .r(ym1));
    modadd #(.P(P)) a0 (.clk(clk), .a(y1), .b(x1), .r(yp1));
    modsub #(.P(P)) s1 (.clk(clk), .a(y2), .b(x2), .r(ym2));
    modadd #(.P(P)) a1 (.clk(clk), .a(y2), .b(x2), .r(yp2));
    modadd #(.P(P)) a2 (.clk(clk), .a(z1), .b(z1), .r(z1x2));
    delay #(.W(768), .N(1)) d0 (.clk(clk), .d({t1, t2, z2}), .q({t1d, t2d, z2d}));

    // level 1 multiplications
    wire [255:0] mA, mB, mTT, mD, mC;
    wire unused0, unused1, unused2, unused3, unused4;
    fmul_p25519 mulA (.clk(clk), .in_valid(1'b1), .a(ym1), .b(ym2), .out_valid(unused0), .r(mA));
    fmul_p25519 mulB (.clk(clk), .in_valid(1'b1), .a(yp1), .b(yp2), .out_valid(unused1), .r(mB));
    fmul_p25519 mulT (.clk(clk), .in_valid(1'b1), .a(t1d), .b(t2d), .out_valid(unused2), .r(mTT));
    fmul_p25519 mulD (.clk(clk), .in_valid(1'b1), .a(z1x2), .b(z2d), .out_valid(unused3), .r(mD));
    // level 2: C = k * T1T2, while A, B, D wait M cycles
    fmul_p25519 mulC (.clk(clk), .in_valid(1'b1), .a(mTT), .b(K), .out_valid(unused4), .r(mC));
    wire [255:0] mAd, mBd, mDd;
    delay #(.W(768), .N(M)) d1 (.clk(clk), .d({mA, mB, mD}), .q({mAd, mBd, mDd}));

    // E, F, G, H (1 cycle)
    wire [255:0] e, f, g, h;
    modsub #(.P(P)) sE (.clk(clk), .a(mBd), .b(mAd), .r(e));
    modsub #(.P(P)) sF (.clk(clk), .a(mDd), .b(mC), .r(f));
    modadd #(.P(P)) aG (.clk(clk), .a(mDd), .b(mC), .r(g));
    modadd #(.P(P)) aH (.clk(clk), .a(mBd), .b(mAd), .r(h));

    // level 3 multiplications
    wire unused5, unused6, unused7, unused8;
    fmul_p25519 mulX (.clk(clk), .in_valid(1'b1), .a(e), .b(f), .out_valid(unused5), .r(x3));
    fmul_p25519 mulY (.clk(clk), .in_valid(1'b1), .a(g), .b(h), .out_valid(unused6), .r(y3));
    fmul_p25519 mulTo(.clk(clk), .in_valid(1'b1), .a(e), .b(h), .out_valid(unused7), .r(t3));
    fmul_p25519 mulZ (.clk(clk), .in_valid(1'b1), .a(f), .b(g), .out_valid(unused8), .r(z3));
endmodule
