// Entry point: hands over to the POCO application (src/app/application.h).
#include "app/application.h"

int main(int argc, char** argv) { return sm::app::runApplication(argc, argv); }
