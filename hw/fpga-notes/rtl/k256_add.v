// secp256k1 point addition, homogeneous projective coordinates (X:Y:Z): the complete formulas
// of Renes, Costello, Batina, "Complete addition formulas for prime order elliptic curves"
// (EUROCRYPT 2016), Algorithm 7 (a = 0), b3 = 3b = 21. 12 multiplications in two levels of 6
// (the dataflow of Alg. 7), 2 multiplications by b3 in LUTs. Inputs and outputs fully reduced.
// Fully pipelined: II = 1, latency 1 + M + 4 + M + 1 + ... = 2*M + 7 = 29 cycles (M = 11).
//   level 1: t0=X1X2 t1=Y1Y2 t2=Z1Z2 m3=(X1+Y1)(X2+Y2) m4=(Y1+Z1)(Y2+Z2) m5=(X1+Z1)(X2+Z2)
//   t3=m3-(t0+t1) t4=m4-(t1+t2) y=b3*(m5-(t0+t2)) u=3t0 b=b3*t2 z=t1+b w=t1-b
//   level 2: X3 = t3*w - t4*y   Y3 = w*z + y*u   Z3 = z*t4 + u*t3
module k256_add (
    input  wire         clk,
    input  wire         in_valid,
    input  wire [255:0] x1, y1, z1, x2, y2, z2,
    output wire         out_valid,
    output wire [255:0] x3, y3, z3
);
    localparam [255:0] P = 256'hfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f;
    localparam M = 11;                       // fmul_k256 latency
    localparam LAT = 2*M + 7;

    reg [LAT-1:0] vpipe;
    initial vpipe = {LAT{1'b0}};
    always @(posedge clk) vpipe <= {vpipe[LAT-2:0], in_valid};
    assign out_valid = vpipe[LAT-1];

    // stage 0: the six sums
    wire [255:0] sxy1, sxy2, syz1, syz2, sxz1, sxz2, x1d, y1d, z1d, x2d, y2d, z2d;
    modadd #(.P(P)) a0 (.clk(clk), .a(x1), .b(y1), .r(sxy1));
    modadd #(.P(P)) a1 (.clk(clk), .a(x2), .b(y2), .r(sxy2));
    modadd #(.P(P)) a2 (.clk(clk), .a(y1), .b(z1), .r(syz1));
    modadd #(.P(P)) a3 (.clk(clk), .a(y2), .b(z2), .r(syz2));
    modadd #(.P(P)) a4 (.clk(clk), .a(x1), .b(z1), .r(sxz1));
    modadd #(.P(P)) a5 (.clk(clk), .a(x2), .b(z2), .r(sxz2));
    delay #(.W(1536), .N(1)) d0 (.clk(clk), .d({x1, y1, z1, x2, y2, z2}),
                                 .q({x1d, y1d, z1d, x2d, y2d, z2d}));

    // level 1 (available at T = 1 + M)
    wire [255:0] t0, t1, t2, m3, m4, m5;
    wire [5:0] nv1;
    fmul_k256 u0 (.clk(clk), .in_valid(1'b1), .a(x1d),  .b(x2d),  .out_valid(nv1[0]), .r(t0));
    fmul_k256 u1 (.clk(clk), .in_valid(1'b1), .a(y1d),  .b(y2d),  .out_valid(nv1[1]), .r(t1));
    fmul_k256 u2 (.clk(clk), .in_valid(1'b1), .a(z1d),  .b(z2d),  .out_valid(nv1[2]), .r(t2));
    fmul_k256 u3 (.clk(clk), .in_valid(1'b1), .a(sxy1), .b(sxy2), .out_valid(nv1[3]), .r(m3));
    fmul_k256 u4 (.clk(clk), .in_valid(1'b1), .a(syz1), .b(syz2), .out_valid(nv1[4]), .r(m4));
    fmul_k256 u5 (.clk(clk), .in_valid(1'b1), .a(sxz1), .b(sxz2), .out_valid(nv1[5]), .r(m5));

    // c1 (T -> T+1): a1 = t0+t1, a2 = t1+t2, a3 = t0+t2, a4 = 2 t0; b = 21 t2 (ready T+3)
    wire [255:0] pa1, pa2, pa3, pa4, b2, t0_1, m3_1, m4_1, m5_1, t1_3;
    modadd #(.P(P)) c1a (.clk(clk), .a(t0), .b(t1), .r(pa1));
    modadd #(.P(P)) c1b (.clk(clk), .a(t1), .b(t2), .r(pa2));
    modadd #(.P(P)) c1c (.clk(clk), .a(t0), .b(t2), .r(pa3));
    modadd #(.P(P)) c1d (.clk(clk), .a(t0), .b(t0), .r(pa4));
    k256_mul21 mb (.clk(clk), .x(t2), .r(b2));
    delay #(.W(1024), .N(1)) d1 (.clk(clk), .d({t0, m3, m4, m5}), .q({t0_1, m3_1, m4_1, m5_1}));
    delay #(.W(256), .N(3)) d2 (.clk(clk), .d(t1), .q(t1_3));

    // c2 (T+1 -> T+2): t3, t4, m5-(t0+t2), u = 3 t0; then y = 21 (m5-(t0+t2)) (ready T+5)
    wire [255:0] t3, t4, y3a, u, yb;
    modsub #(.P(P)) c2a (.clk(clk), .a(m3_1), .b(pa1), .r(t3));
    modsub #(.P(P)) c2b (.clk(clk), .a(m4_1), .b(pa2), .r(t4));
    modsub #(.P(P)) c2c (.clk(clk), .a(m5_1), .b(pa3), .r(y3a));
    modadd #(.P(P)) c2d (.clk(clk), .a(pa4),  .b(t0_1), .r(u));
    k256_mul21 my (.clk(clk), .x(y3a), .r(yb));

    // c3 (T+3 -> T+4): z = t1 + b, w = t1 - b
    wire [255:0] z, w;
    modadd #(.P(P)) c3a (.clk(clk), .a(t1_3), .b(b2), .r(z));
    modsub #(.P(P)) c3b (.clk(clk), .a(t1_3), .b(b2), .r(w));

    // align to T+5
    wire [255:0] t3_5, t4_5, u_5, z_5, w_5;
    delay #(.W(768), .N(3)) d3 (.clk(clk), .d({t3, t4, u}), .q({t3_5, t4_5, u_5}));
    delay #(.W(512), .N(1)) d4 (.clk(clk), .d({z, w}), .q({z_5, w_5}));

    // level 2 (available at T + 5 + M)
    wire [255:0] p_ty, p_tw, p_yu, p_wz, p_ut, p_zt;
    wire [5:0] nv2;
    fmul_k256 v0 (.clk(clk), .in_valid(1'b1), .a(t4_5), .b(yb),   .out_valid(nv2[0]), .r(p_ty));
    fmul_k256 v1 (.clk(clk), .in_valid(1'b1), .a(t3_5), .b(w_5),  .out_valid(nv2[1]), .r(p_tw));
    fmul_k256 v2 (.clk(clk), .in_valid(1'b1), .a(yb),   .b(u_5),  .out_valid(nv2[2]), .r(p_yu));
    fmul_k256 v3 (.clk(clk), .in_valid(1'b1), .a(w_5),  .b(z_5),  .out_valid(nv2[3]), .r(p_wz));
    fmul_k256 v4 (.clk(clk), .in_valid(1'b1), .a(u_5),  .b(t3_5), .out_valid(nv2[4]), .r(p_ut));
    fmul_k256 v5 (.clk(clk), .in_valid(1'b1), .a(z_5),  .b(t4_5), .out_valid(nv2[5]), .r(p_zt));

    // final (1 cycle)
    modsub #(.P(P)) fx (.clk(clk), .a(p_tw), .b(p_ty), .r(x3));
    modadd #(.P(P)) fy (.clk(clk), .a(p_wz), .b(p_yu), .r(y3));
    modadd #(.P(P)) fz (.clk(clk), .a(p_zt), .b(p_ut), .r(z3));
endmodule
