"""The torchvision detectors of the zoo: export_zoo.py exports them, test_detection.py runs them.
No torch import here, so the tests need not load torch next to onnxruntime."""

# torchvision detectors at 320x320: name -> (keyword arguments, output names in
# the order of torchvision's result dicts, whether --calibrate-bn calibrates the
# backbone). The resize transform is pinned to 320 (the default upscales to 800
# and takes the CPU reference minutes); score thresholds and caps are explicit
# because test_detection.py relies on them. BatchNorm calibration is per model,
# so that the detections are not degenerate: with default statistics ssdlite's
# features vanish and every class score is exactly 1/91; with calibrated ones
# Mask R-CNN's box classifier saturates (all 100 detections one class, scores
# 0.97-0.9996, even with its bias centred), while with default ones it gives
# four classes and scores 0.45-0.68.
DETECTORS = {
    "maskrcnn_resnet50_fpn": (dict(min_size=320, max_size=320, box_score_thresh=0.05, box_detections_per_img=100),
                              ["boxes", "labels", "scores", "masks"], False),
    "ssdlite320_mobilenet_v3_large": (dict(score_thresh=0.001, detections_per_img=100),
                                      ["boxes", "scores", "labels"], True),
}
DETECTION_SIZE = 320
