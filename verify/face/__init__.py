"""Face front end (MTCNN detection, five-point alignment) and face embedding network."""
