"""Shapes and hand counts shared by the profiling tests (import this, not conftest)."""

SAMPLE_2D = (9, 9, 16)
#: Hand count for the 2D model below (valid padding unless noted):
#: conv 3×3 16→32 on 9×9 → 7×7×32 outputs × (3·3·16) = 225,792
#: depthwise 3×3 on 7×7×32 → 5×5×32 outputs × (3·3) = 7,200
#: conv 3×3 32→32 "same" on 5×5 → 5×5×32 outputs × (3·3·32) = 230,400
#: dense 32→5 → 5 outputs × 32 = 160
MACS_2D = 225_792 + 7_200 + 230_400 + 160
