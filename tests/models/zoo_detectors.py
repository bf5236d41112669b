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

# The rest of issue #10's torchvision detectors, for the GPU tests only
# (tests/gpu/export_wide.py exports them, tests/gpu/test_wide_gpu.py runs
# them; too slow for the CPU reference in CI). Same form as DETECTORS. With
# random weights at 320x320 on skimage's astronaut: the R-CNNs' box heads
# give 100 detections over several labels (scores 0.4-0.9997) with default
# BatchNorm statistics; Keypoint R-CNN has one class and ~20 detections
# above 0.05, so its threshold is 0.01; RetinaNet and FCOS score near their
# classification prior (0.05-0.07 and 0.12-0.15) and SSDlite's 91-way
# softmax at 0.012-0.013, so export_wide.py scales their last classification
# conv's weights (spread_logits) and calibrates the backbone's BatchNorm.
_RCNN = dict(min_size=DETECTION_SIZE, max_size=DETECTION_SIZE, box_detections_per_img=100)
_ONE_STAGE = dict(min_size=DETECTION_SIZE, max_size=DETECTION_SIZE, detections_per_img=100)
WIDE_DETECTORS = {
    "maskrcnn_resnet50_fpn": DETECTORS["maskrcnn_resnet50_fpn"],
    "maskrcnn_resnet50_fpn_v2": (dict(_RCNN, box_score_thresh=0.05), ["boxes", "labels", "scores", "masks"],
                                 False),
    "fasterrcnn_resnet50_fpn_v2": (dict(_RCNN, box_score_thresh=0.05), ["boxes", "labels", "scores"], False),
    "retinanet_resnet50_fpn_v2": (dict(_ONE_STAGE, score_thresh=0.05), ["boxes", "scores", "labels"], True),
    "fcos_resnet50_fpn": (dict(_ONE_STAGE, score_thresh=0.05), ["boxes", "scores", "labels"], True),
    "ssdlite320_mobilenet_v3_large": DETECTORS["ssdlite320_mobilenet_v3_large"],
    "keypointrcnn_resnet50_fpn": (dict(_RCNN, box_score_thresh=0.01),
                                  ["boxes", "labels", "scores", "keypoints", "keypoints_scores"], False),
}
ALL_DETECTORS = {**DETECTORS, **WIDE_DETECTORS}


def detection_settings(name):
    """(score threshold, detections-per-image cap) a detector was exported with."""
    kwargs = ALL_DETECTORS[name][0]
    thresh = kwargs.get("box_score_thresh", kwargs.get("score_thresh"))
    cap = kwargs.get("box_detections_per_img", kwargs.get("detections_per_img"))
    return thresh, cap
